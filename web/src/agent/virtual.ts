// Which rows of a fixed-row-height list to render: the visible ones plus
// `overscan` on each side, so a list of thousands stays a few dozen nodes.
export interface Range {
  start: number;
  end: number; // exclusive
}

export function visibleRange(scrollTop: number, viewport: number, rowHeight: number, count: number, overscan = 6): Range {
  if (count <= 0 || rowHeight <= 0) return { start: 0, end: 0 };
  const first = Math.floor(Math.max(0, scrollTop) / rowHeight);
  const shown = Math.ceil(Math.max(0, viewport) / rowHeight) + 1;
  const start = Math.max(0, Math.min(count - 1, first) - overscan);
  const end = Math.min(count, first + shown + overscan);
  return { start, end: Math.max(start, end) };
}

/** The scrollTop that brings row `i` into view, or the current one if it is. */
export function scrollToRow(i: number, scrollTop: number, viewport: number, rowHeight: number): number {
  const top = i * rowHeight;
  if (top < scrollTop) return top;
  if (top + rowHeight > scrollTop + viewport) return top + rowHeight - viewport;
  return scrollTop;
}
