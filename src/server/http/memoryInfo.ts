/**
 * memoryInfo: the `# Memory` section of INFO, from process.memoryUsage() (Redis field names where
 * one applies: used_memory is the V8 heap plus external and array buffers, used_memory_rss the
 * resident set), plus the page cache's budget and use.
 *
 * Invariant: never throws; a closed database just leaves the cache fields out.
 */
import type { Database } from "../../db/Database.js";

function human(n: number): string {
  const u = ["B", "K", "M", "G", "T"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < u.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(2)}${u[i]}`;
}

let peak = 0;

export function memoryInfo(db: Database): Array<[string, string | number]> {
  const m = process.memoryUsage();
  // `external` already includes `arrayBuffers` (Buffers): adding both counted them twice.
  const used = m.heapUsed + m.external;
  peak = Math.max(peak, used);
  const rows: Array<[string, string | number]> = [
    ["used_memory", used],
    ["used_memory_human", human(used)],
    ["used_memory_rss", m.rss],
    ["used_memory_rss_human", human(m.rss)],
    ["used_memory_peak", peak],
    ["used_memory_heap", m.heapUsed],
    ["total_heap_memory", m.heapTotal],
    ["used_memory_external", m.external],
    ["used_memory_array_buffers", m.arrayBuffers],
    ["mem_fragmentation_ratio", used > 0 ? Number((m.rss / used).toFixed(2)) : 0],
    ["maxmemory", 0],
    ["maxmemory_policy", "noeviction"],
  ];
  try {
    const s = db.getStats();
    rows.push(["keel_page_cache_pages", s.cache.pages], ["keel_page_cache_capacity_pages", s.cache.capacityPages], ["keel_page_cache_bytes", s.cache.pages * s.pageSize]);
  } catch {
    // closed: no cache figures
  }
  return rows;
}
