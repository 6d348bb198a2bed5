#!/usr/bin/env node
// The `mman` command: page-fault and I/O benchmarks, and a vmtouch-like residency tool. Each
// command is defined in commands/; this file parses, runs and prints any of them.
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { UsageError, type Command } from './command';
import { faults } from './commands/faults';
import { io } from './commands/io';
import { pressure } from './commands/pressure';
import { residency } from './commands/residency';
import { ring } from './commands/ring';
import { scale } from './commands/scale';
import { serve } from './commands/serve';
import { tlb } from './commands/tlb';
import { progressBar } from './util/progress';

// In the order `mman --help` lists them.
const COMMANDS: readonly Command[] = [faults, io, scale, pressure, tlb, serve, ring, residency];

// What `mman --help` prints: each command's synopsis, and what it does indented below it.
const USAGE = [
  'Usage:',
  ...COMMANDS.flatMap((c) => c.usage.map((line, i) => `${i === 0 ? '  ' : '      '}${line}`)),
  '  mman --help',
].join('\n');

function help(out: NodeJS.WritableStream): number {
  out.write(`${USAGE}\n`);
  return 0;
}

// Parses `args` for `command` (a mistake is a usage error), runs it with a progress bar on
// stderr (drawn when it is a terminal), prints the JSON with --json or else the table, and
// writes the chart to --svg FILE.
async function runCommand(command: Command, args: string[], out: NodeJS.WritableStream): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      strict: true,
      allowPositionals: command.positionals === true,
      options: {
        ...command.options,
        json: { type: 'boolean' },
        ...(command.svg !== undefined ? { svg: { type: 'string' } } : {}),
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return help(out);
  const bar = progressBar();
  let report: unknown;
  try {
    report = await command.run(values, positionals, (done, total, label) => bar.update(done, total, label));
  } finally {
    bar.done();
  }
  const json = command.json !== undefined ? command.json(report) : report;
  out.write(values.json ? `${JSON.stringify(json, null, 2)}\n` : `${command.table(report)}\n`);
  if (command.svg !== undefined && typeof values.svg === 'string') writeFileSync(values.svg, command.svg(report));
  return command.after !== undefined ? command.after(report, out) : 0;
}

/**
 * Runs the `mman` command with `args` (without `node` and the script) and resolves with
 * the exit status: 0 on success, 1 on a failure, 2 on a usage error.
 */
export async function main(
  args: string[],
  out: NodeJS.WritableStream = process.stdout,
  err: NodeJS.WritableStream = process.stderr,
): Promise<number> {
  const [first] = args;
  try {
    if (first === undefined || first === '--help' || first === '-h' || first === 'help') return help(out);
    for (const command of COMMANDS) {
      const words = command.name.split(' ');
      if (words.every((word, i) => args[i] === word)) return await runCommand(command, args.slice(words.length), out);
    }
    throw new UsageError(`unknown command '${args.slice(0, first === 'bench' ? 2 : 1).join(' ')}'`);
  } catch (error) {
    if (error instanceof UsageError) {
      err.write(`mman: ${error.message}\n\n${USAGE}\n`);
      return 2;
    }
    const e = error as NodeJS.ErrnoException;
    err.write(`mman: ${e.code !== undefined ? '' : `${e.name}: `}${e.message}\n`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((status) => {
    process.exitCode = status;
  });
}
