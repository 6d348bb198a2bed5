// `mman residency`: pages of each file in the page cache (like fincore/vmtouch), and --touch,
// --evict, --lock.
import { PAGE_SIZE, type Mapping } from '../..';
import { command, UsageError } from '../command';
import { evictFile, fileResidency, lockFile, touchFile, type FileResidency } from '../util/page-cache';
import { formatSize } from '../util/size';
import { formatTable } from '../util/table';

interface Residency {
  files: FileResidency[];
  /** The mappings --lock holds until interrupted. */
  locked: Mapping[];
  lock: boolean;
}

// One row per file, and a total line for more than one.
function residencyTable(files: readonly FileResidency[]): string {
  const rows = files.map((f) => [
    f.path,
    formatSize(f.size),
    String(f.pages),
    String(f.residentPages),
    `${f.percent.toFixed(1)}%`,
  ]);
  if (files.length > 1) {
    const pages = files.reduce((n, f) => n + f.pages, 0);
    const resident = files.reduce((n, f) => n + f.residentPages, 0);
    rows.push([
      'total',
      formatSize(files.reduce((n, f) => n + f.size, 0)),
      String(pages),
      String(resident),
      `${(pages === 0 ? 100 : (resident / pages) * 100).toFixed(1)}%`,
    ]);
  }
  return formatTable(
    [
      { heading: 'file' },
      { heading: 'size', numeric: true },
      { heading: 'pages', numeric: true },
      { heading: 'resident', numeric: true },
      { heading: 'percent', numeric: true },
    ],
    rows,
  );
}

// Holds the locked mappings until SIGINT or SIGTERM, then unlocks by unmapping.
function holdUntilInterrupted(mappings: Mapping[], out: NodeJS.WritableStream): Promise<number> {
  const pages = mappings.reduce((n, m) => n + Math.ceil(m.length / PAGE_SIZE), 0);
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => {}, 2 ** 30);
    const release = (): void => {
      clearInterval(keepAlive);
      process.off('SIGINT', release);
      process.off('SIGTERM', release);
      for (const mapping of mappings) mapping.unmap();
      out.write('Released.\n');
      resolve(0);
    };
    process.on('SIGINT', release);
    process.on('SIGTERM', release);
    // Only now: whoever reads this line may interrupt at once.
    out.write(`Locked ${pages} pages in ${mappings.length} file(s); press Ctrl-C to release.\n`);
  });
}

export const residency = command({
  name: 'residency',
  usage: [
    'mman residency FILE... [--touch | --evict | --lock] [--json]',
    'Pages of each file in the page cache (like fincore/vmtouch). --touch reads them in,',
    '--evict drops them (POSIX_FADV_DONTNEED), --lock mlocks them until interrupted.',
  ],
  options: {
    touch: { type: 'boolean' },
    evict: { type: 'boolean' },
    lock: { type: 'boolean' },
  },
  positionals: true,
  run(values, positionals): Residency {
    if (positionals.length === 0) throw new UsageError('residency needs at least one FILE');
    if ([values.touch, values.evict, values.lock].filter(Boolean).length > 1) {
      throw new UsageError('--touch, --evict and --lock exclude each other');
    }
    const locked: Mapping[] = [];
    try {
      for (const path of positionals) {
        if (values.touch) touchFile(path);
        if (values.evict) evictFile(path);
        if (values.lock) {
          const mapping = lockFile(path);
          if (mapping !== null) locked.push(mapping);
        }
      }
    } catch (err) {
      for (const mapping of locked) mapping.unmap();
      throw err;
    }
    return { files: positionals.map(fileResidency), locked, lock: values.lock === true };
  },
  table: (report) => residencyTable(report.files),
  json: (report) => ({ files: report.files }),
  after: (report, out) => (report.lock ? holdUntilInterrupted(report.locked, out) : 0),
});
