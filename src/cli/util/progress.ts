// A progress bar on stderr for long runs, drawn only when stderr is a terminal.
import type { WriteStream } from 'node:tty';

/** Reports progress; `done()` clears the bar. Does nothing unless the stream is a TTY. */
export interface ProgressBar {
  update(done: number, total: number, label: string): void;
  done(): void;
}

const WIDTH = 30;

/** A progress bar drawn on `stream` (default stderr) with `\r`, only when it is a TTY. */
export function progressBar(stream: NodeJS.WriteStream = process.stderr): ProgressBar {
  const tty = (stream as WriteStream).isTTY === true;
  let drawn = false;
  return {
    update(done, total, label) {
      if (!tty) return;
      const fraction = total > 0 ? Math.min(1, done / total) : 1;
      const filled = Math.round(fraction * WIDTH);
      const columns = (stream as WriteStream).columns ?? 80;
      const text = `[${'#'.repeat(filled)}${' '.repeat(WIDTH - filled)}] ${String(Math.round(fraction * 100)).padStart(3)}% ${label}`;
      stream.write(`\r${text.slice(0, columns - 1).padEnd(columns - 1)}`);
      drawn = true;
    },
    done() {
      if (tty && drawn) stream.write(`\r${' '.repeat(((stream as WriteStream).columns ?? 80) - 1)}\r`);
      drawn = false;
    },
  };
}
