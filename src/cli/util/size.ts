// Byte sizes as people type them on a command line: 4096, 64K, 256M, 1G, 1.5G.
import { invalidArgValue } from '../../internal';

const UNITS: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/** Parses `256M`, `1G`, `64k`, `4096` (binary units, optional `B`/`iB`) into bytes. */
export function parseSize(text: string, name = 'size'): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (match === null) throw invalidArgValue(name, text, 'must be a size like 4096, 64K, 256M or 1G');
  const bytes = Math.round(Number(match[1]) * UNITS[match[2].toUpperCase()]);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw invalidArgValue(name, text, 'must be a positive size');
  return bytes;
}

/** Formats bytes the way {@link parseSize} reads them: `256M`, `1G`, `1.5K`. */
export function formatSize(bytes: number): string {
  for (const unit of ['T', 'G', 'M', 'K']) {
    const scale = UNITS[unit];
    if (bytes >= scale) return `${Number((bytes / scale).toFixed(1))}${unit}`;
  }
  return `${bytes}`;
}
