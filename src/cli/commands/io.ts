// `mman bench io`: a mapping against fs reads, then what the event loop suffers on a cold file.
import { command, countOption, sizeOption } from '../command';
import { runIoBench, type IoReport } from '../measure/io';
import { formatSize } from '../util/size';
import { formatNumber, formatTable } from '../util/table';

// ms per variant and how many times slower than the mapping; then the event loop's delays.
function ioTable(report: IoReport): string {
  const table = formatTable(
    [
      { heading: 'operation' },
      { heading: 'method' },
      { heading: 'ms', numeric: true },
      { heading: '× mmap', numeric: true },
    ],
    report.results.map((r) => [r.operation, r.method, formatNumber(r.ms), r.ratio.toFixed(2)]),
  );
  const loop = formatTable(
    [
      { heading: 'method' },
      { heading: 'total ms', numeric: true },
      { heading: 'reads ms', numeric: true },
      { heading: 'loop p50 ms', numeric: true },
      { heading: 'p99 ms', numeric: true },
      { heading: 'max ms', numeric: true },
    ],
    report.eventLoop.map((r) => [
      r.method,
      formatNumber(r.totalMs),
      formatNumber(r.readsMs),
      r.delayP50.toFixed(2),
      r.delayP99.toFixed(2),
      r.delayMax.toFixed(2),
    ]),
  );
  return [
    `${formatSize(report.size)} file in the page cache, ${report.randomReads} random 4-byte reads, median of ${report.repeat}`,
    '',
    table,
    '',
    `Event loop: ${report.eventLoopReads} random 4-byte reads of the file dropped from the page cache, a 1 ms timer running`,
    '',
    loop,
  ].join('\n');
}

export const io = command({
  name: 'bench io',
  usage: [
    'mman bench io [--size 1G] [--reads 1000000] [--loop-reads 100000] [--repeat 3] [--json] [--dir DIR]',
    'Sequential scan and random 4-byte reads: a mapping vs fs.readFileSync, fs.readSync, a read stream.',
  ],
  options: {
    size: { type: 'string' },
    reads: { type: 'string' },
    'loop-reads': { type: 'string' },
    repeat: { type: 'string' },
    dir: { type: 'string' },
  },
  run: (values, _positionals, onProgress) =>
    runIoBench({
      size: sizeOption(values.size, 2 ** 30, 'size'),
      randomReads: countOption(values.reads, 1_000_000, 'reads'),
      eventLoopReads: countOption(values['loop-reads'], 100_000, 'loop-reads'),
      repeat: countOption(values.repeat, 3, 'repeat'),
      dir: values.dir,
      onProgress,
    }),
  table: ioTable,
});
