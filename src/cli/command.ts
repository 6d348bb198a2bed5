// What a command of `mman` is: the definition each file in commands/ exports, which the runner
// in index.ts parses, runs and prints; and the checks of option values the commands share.
import { parseSize } from './util/size';

/** A mistake on the command line: printed with the usage, exit status 2. */
export class UsageError extends Error {}

/** Progress of a long run: `done` steps of `total`, and what is being done now. */
export type Progress = (done: number, total: number, label: string) => void;

/** A command's own options, as `parseArgs` takes them (`--json`, `--svg` and `--help` are the runner's). */
export type OptionSpecs = Readonly<Record<string, { readonly type: 'string' | 'boolean' }>>;

/** What `parseArgs` gives for those options, plus `--json`. */
export type Values<O extends OptionSpecs> = {
  [K in keyof O]?: O[K]['type'] extends 'string' ? string : O[K]['type'] extends 'boolean' ? boolean : string | boolean;
} & { json?: boolean };

/** One command: how it is called, and how its values become a report, a table and a chart. */
export interface Command<O extends OptionSpecs = OptionSpecs, R = unknown> {
  /** The words that call it: `bench faults`, `residency`. */
  readonly name: string;
  /** Its lines in `mman --help`: the synopsis, then what it does. */
  readonly usage: readonly string[];
  /** Its options; the runner adds `--json`, `--help` and, with `svg`, `--svg FILE`. */
  readonly options: O;
  /** Whether it takes operands (FILE...). */
  readonly positionals?: boolean;
  /** Checks the values (a mistake throws a UsageError) and makes the report. */
  run(values: Values<O>, positionals: string[], onProgress: Progress): R | Promise<R>;
  /** The report as the aligned table printed without `--json`. */
  table(report: R): string;
  /** What `--json` prints, when it is not the report itself. */
  json?(report: R): unknown;
  /** The report as the SVG chart `--svg FILE` writes. */
  svg?(report: R): string;
  /** What happens once the report is printed; resolves with the exit status (default 0). */
  after?(report: R, out: NodeJS.WritableStream): number | Promise<number>;
}

/** A command, its option and report types inferred from the literal. */
export const command = <const O extends OptionSpecs, R>(definition: Command<O, R>): Command<O, R> => definition;

/** A size option (`256M`, `1G`), or `fallback` when it is not given. */
export function sizeOption(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined) return fallback;
  try {
    return parseSize(text, name);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** A count option: a positive integer, or `fallback` when it is not given. */
export function countOption(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1)
    throw new UsageError(`--${name} must be a positive integer, not '${text}'`);
  return value;
}

/** Throws a usage error naming the kinds that are not among `known`. */
export function checkKinds(kinds: readonly string[], known: readonly string[]): void {
  const unknown = kinds.filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new UsageError(`unknown kind ${unknown.join(', ')}; kinds are ${known.join(', ')}`);
}
