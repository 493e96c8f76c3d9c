// Formatting of times, days and sizes. Times are server milliseconds and are
// shown in the viewer's own time zone.

const pad = (n: number) => String(n).padStart(2, '0');

/** `HH:mm`, 24-hour. */
export function formatTime(ms: number): string {
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** Local calendar day, as a comparable number. */
export function dayKey(ms: number): number {
  const d = new Date(ms);
  return d.getFullYear() * 10000 + (d.getMonth() + 1) * 100 + d.getDate();
}

/**
 * The label of a day separator: "Today", "Yesterday", or the date
 * (`2025-11-26`; the year is left out within the current year).
 */
export function formatDay(ms: number, now: number, words: { today: string; yesterday: string }): string {
  if (dayKey(ms) === dayKey(now)) return words.today;
  const y = new Date(now);
  y.setDate(y.getDate() - 1);
  if (dayKey(ms) === dayKey(y.getTime())) return words.yesterday;
  const d = new Date(ms);
  const md = `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return d.getFullYear() === new Date(now).getFullYear() ? md : `${d.getFullYear()}-${md}`;
}

/** `512 B`, `1.5 KB`, `20 MB`. */
export function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '';
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const s = v >= 10 ? String(Math.round(v)) : String(Math.round(v * 10) / 10);
  return `${s} ${units[i]}`;
}
