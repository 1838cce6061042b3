/** Command-line options of the bench's tools (bench/tools): `--name value` pairs. */

/** The value after `--name` on the command line, or undefined when the option is not given. */
export function option(name: string): string | undefined {
  const at = process.argv.indexOf(name);
  return at > 0 ? process.argv[at + 1] : undefined;
}

/**
 * `--baseline PATH`, another build's bin/rustydb.js that an A/B tool measures this tree's against;
 * without it, prints `usage` and exits.
 */
export function baselineOrExit(usage: string): string {
  const baseline = option('--baseline');
  if (!baseline) {
    console.error(usage);
    process.exit(2);
  }
  return baseline;
}
