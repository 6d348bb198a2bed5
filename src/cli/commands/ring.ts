// `mman bench ring`: RingBuffer with one or many writers and readers against process.send,
// postMessage and the same protocol in C. It runs the package's bench/ring.js (whose peers are
// child processes and worker threads of that script) and prints its table.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { command, UsageError } from '../command';

/** What `mman bench ring` reports: bench/ring.js's table as printed, and its rows. */
export interface RingReport {
  /** The lines bench/ring.js printed. */
  readonly text: string;
  /** Its `--json` output: `{ rows, cSkipped }`, or with `--solo` `{ solo, messages, cSkipped }`. */
  readonly json: unknown;
}

// The script, where the package ships it (lib/cli/commands/ -> bench/).
const SCRIPT = join(__dirname, '..', '..', '..', 'bench', 'ring.js');

const LISTS: Readonly<Record<string, readonly string[]>> = {
  only: ['ring-many', 'ring-one', 'ipc', 'c'],
  kind: ['process', 'thread'],
  topology: ['1-1', '4-1', '1-4'],
  size: ['64', '4096'],
};

// A comma-separated choice among `LISTS[name]`, as bench/ring.js takes it.
function listOption(name: string, text: string | undefined): string[] {
  if (text === undefined) return [];
  const allowed = LISTS[name];
  const items = text.split(',');
  for (const item of items) {
    if (!allowed.includes(item)) throw new UsageError(`--${name}: '${item}' is not one of ${allowed.join(', ')}`);
  }
  return [`--${name}`, items.join(',')];
}

export const ring = command({
  name: 'bench ring',
  usage: [
    'mman bench ring [--quick] [--warm] [--solo] [--only ring-many,ring-one,ipc,c] [--kind process,thread] [--topology 1-1,4-1,1-4] [--size 64,4096] [--no-paced] [--json]',
    'RingBuffer with one or many writers and readers against process.send, postMessage and the same protocol in C.',
  ],
  options: {
    quick: { type: 'boolean' },
    warm: { type: 'boolean' },
    solo: { type: 'boolean' },
    'no-paced': { type: 'boolean' },
    only: { type: 'string' },
    kind: { type: 'string' },
    topology: { type: 'string' },
    size: { type: 'string' },
  },
  async run(values, _positionals, onProgress): Promise<RingReport> {
    const args = [
      ...(values.quick ? ['--quick'] : []),
      ...(values.warm ? ['--warm'] : []),
      ...(values.solo ? ['--solo'] : []),
      ...(values['no-paced'] ? ['--no-paced'] : []),
      ...listOption('only', values.only),
      ...listOption('kind', values.kind),
      ...listOption('topology', values.topology),
      ...listOption('size', values.size),
    ];
    if (!existsSync(SCRIPT)) throw new Error(`bench/ring.js is not in this installation (looked for ${SCRIPT})`);
    const dir = mkdtempSync(join(tmpdir(), 'mman-bench-ring-'));
    try {
      const jsonFile = join(dir, 'ring.json');
      const child = spawn(process.execPath, [SCRIPT, ...args, '--json', jsonFile], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let text = '';
      let errors = '';
      let lines = 0;
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        text += chunk;
        lines += chunk.split('\n').length - 1;
        onProgress(lines, lines + 1, text.trimEnd().split('\n').pop() ?? '');
      });
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (errors += chunk));
      const status = await new Promise<number | string>((resolve, reject) => {
        child.on('error', reject);
        child.on('close', (code, signal) => resolve(code ?? signal ?? 'unknown'));
      });
      if (status !== 0) throw new Error(`bench/ring.js exited with ${status}:\n${errors.trim()}`);
      return { text: text.trimEnd(), json: JSON.parse(readFileSync(jsonFile, 'utf8')) as unknown };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  table: (report) => report.text,
  json: (report) => report.json,
});
