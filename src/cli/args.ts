/**
 * args: parsers for option values and arguments. A bad value is a commander InvalidArgumentError,
 * which keel reports as a usage error (exit 2).
 */
import { InvalidArgumentError, Option } from "commander";
import { KEY_TYPES, VALUE_TYPES } from "./values.js";

/** A non-negative safe integer (an LSN, a limit). */
export function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`expected a non-negative integer, got ${JSON.stringify(value)}`);
  return n;
}

/**
 * A path the command writes (a destination directory, a dump file). "" (an unset shell variable)
 * is refused before any work: otherwise the copy runs whole and only its final rename fails.
 */
export function outputPath(value: string): string {
  if (value === "") throw new InvalidArgumentError("the path is empty");
  return value;
}

/** --db NAME: the sub-database (the default one when absent). */
export function dbOption(): Option {
  return new Option("--db <name>", "sub-database (default: the default database)");
}

export function keyTypeOption(): Option {
  return new Option("--key-type <type>", "how keys on the command line are read").choices([...KEY_TYPES]).default("string");
}

export function valueTypeOption(): Option {
  return new Option("--value-type <type>", "how the value on the command line is read").choices([...VALUE_TYPES]).default("string");
}
