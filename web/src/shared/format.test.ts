import { describe, expect, test } from 'vitest';
import { dayKey, formatDay, formatSize, formatTime } from './format';

describe('formatSize', () => {
  test.each([
    [0, '0 B'],
    [512, '512 B'],
    [1024, '1 KB'],
    [1536, '1.5 KB'],
    [20 * 1024 * 1024, '20 MB'],
    [3.25 * 1024 * 1024 * 1024, '3.3 GB'],
  ])('%d bytes is %s', (n, s) => expect(formatSize(n)).toBe(s));

  test('nonsense gives nothing', () => {
    expect(formatSize(-1)).toBe('');
    expect(formatSize(Number.NaN)).toBe('');
  });
});

describe('times and days', () => {
  const at = (y: number, mo: number, d: number, h = 0, mi = 0) => new Date(y, mo - 1, d, h, mi).getTime();
  const words = { today: 'Today', yesterday: 'Yesterday' };

  test('HH:mm, 24-hour, zero-padded', () => {
    expect(formatTime(at(2025, 11, 26, 9, 5))).toBe('09:05');
    expect(formatTime(at(2025, 11, 26, 23, 59))).toBe('23:59');
  });

  test('today, yesterday, this year, an earlier year', () => {
    const now = at(2025, 11, 26, 12);
    expect(formatDay(at(2025, 11, 26, 0, 1), now, words)).toBe('Today');
    expect(formatDay(at(2025, 11, 25, 23, 59), now, words)).toBe('Yesterday');
    expect(formatDay(at(2025, 3, 1), now, words)).toBe('03-01');
    expect(formatDay(at(2024, 12, 31), now, words)).toBe('2024-12-31');
  });

  test('yesterday across a month boundary', () => {
    expect(formatDay(at(2025, 2, 28, 18), at(2025, 3, 1, 8), words)).toBe('Yesterday');
  });

  test('dayKey separates calendar days', () => {
    expect(dayKey(at(2025, 1, 1, 0, 0))).toBe(dayKey(at(2025, 1, 1, 23, 59)));
    expect(dayKey(at(2025, 1, 1))).not.toBe(dayKey(at(2025, 1, 2)));
  });
});
