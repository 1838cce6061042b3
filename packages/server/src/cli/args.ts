/** Command-line parsing for `rustydb`: a command, then `--flag value`, `--flag=value` or bare booleans. */
import { CONFIG_FIELDS, type ConfigField } from '../config/config.ts';

export interface ParsedArgs {
  command: string | undefined;
  positional: string[];
  /** Configuration flags, by field name. */
  config: Partial<Record<ConfigField, string | boolean>>;
  /** Other flags (command options such as --format), by their own name. */
  options: Record<string, string | boolean>;
  configFile: string | undefined;
}

export function parseArgs(argv: readonly string[]): ParsedArgs {
  const result: ParsedArgs = {
    command: undefined,
    positional: [],
    config: {},
    options: {},
    configFile: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) {
      if (result.command === undefined) result.command = arg;
      else result.positional.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    let name = (eq === -1 ? arg.slice(2) : arg.slice(2, eq)).replaceAll('-', '_');
    let value: string | boolean | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
    if (value === undefined && name.startsWith('no_') && isBoolField(name.slice(3))) {
      name = name.slice(3);
      value = false;
    }
    if (value === undefined) {
      const next = argv[i + 1];
      if (isBoolField(name) && (next === undefined || !/^(true|false|1|0|yes|no|on|off)$/i.test(next)))
        value = true;
      else if (next !== undefined) {
        value = next;
        i++;
      } else throw new Error(`--${name.replaceAll('_', '-')} needs a value`);
    }
    if (name === 'config') result.configFile = String(value);
    else if (Object.hasOwn(CONFIG_FIELDS, name)) result.config[name as ConfigField] = value;
    else result.options[name] = value;
  }
  return result;
}

/** Command options that are switches rather than taking a value. */
const BOOLEAN_OPTIONS = new Set(['json']);

function isBoolField(name: string): boolean {
  if (BOOLEAN_OPTIONS.has(name)) return true;
  return Object.hasOwn(CONFIG_FIELDS, name) && CONFIG_FIELDS[name as ConfigField].kind === 'bool';
}
