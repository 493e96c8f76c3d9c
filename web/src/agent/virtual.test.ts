import { describe, expect, test } from 'vitest';
import { scrollToRow, visibleRange } from './virtual';

describe('visibleRange', () => {
  test('the rows in view plus the overscan, clamped to the list', () => {
    expect(visibleRange(0, 680, 68, 1000, 6)).toEqual({ start: 0, end: 17 });
    expect(visibleRange(68 * 500, 680, 68, 1000, 6)).toEqual({ start: 494, end: 517 });
    expect(visibleRange(68 * 995, 680, 68, 1000, 6)).toEqual({ start: 989, end: 1000 });
  });

  test('a short or empty list', () => {
    expect(visibleRange(0, 680, 68, 3)).toEqual({ start: 0, end: 3 });
    expect(visibleRange(0, 680, 68, 0)).toEqual({ start: 0, end: 0 });
    expect(visibleRange(-50, 680, 68, 3)).toEqual({ start: 0, end: 3 });
  });

  test('never more than a screenful and the overscan, however long the list', () => {
    const r = visibleRange(123_456, 800, 68, 100_000, 6);
    expect(r.end - r.start).toBeLessThanOrEqual(Math.ceil(800 / 68) + 1 + 12);
  });
});

describe('scrollToRow', () => {
  test('scrolls only as far as needed', () => {
    expect(scrollToRow(0, 0, 680, 68)).toBe(0);
    expect(scrollToRow(20, 0, 680, 68)).toBe(21 * 68 - 680);
    expect(scrollToRow(2, 680, 680, 68)).toBe(136);
    expect(scrollToRow(12, 680, 680, 68)).toBe(680);
  });
});
