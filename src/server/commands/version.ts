/** The Redis version KeelDB's server reports (INFO redis_version, HELLO version): the command set it follows. */
export const SERVER_VERSION_INFO = "7.0.0";
