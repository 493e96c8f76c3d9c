// A modal dialog: role="dialog", aria-modal, named by its heading; focus
// moves in (to `initial` or the first control), Tab stays inside, Esc or a
// click on the backdrop closes it, and focus returns where it was.
import type { ComponentChildren, Ref } from 'preact';
import { useLayoutEffect, useRef } from 'preact/hooks';
import { CloseIcon } from '../shared/icons';

let seq = 0;
const FOCUSABLE = 'button:not([disabled]), input:not([disabled]), textarea:not([disabled]), select:not([disabled]), a[href], [tabindex]:not([tabindex="-1"])';

export function Dialog(p: {
  title: string;
  onClose: () => void;
  closeLabel: string;
  children: ComponentChildren;
  wide?: boolean;
  /** Where focus goes first: a control, or 'box' for the dialog itself (a read-only one). */
  initial?: Ref<HTMLElement | null> | 'box';
}) {
  const box = useRef<HTMLDivElement>(null);
  const id = useRef(`dlg-${++seq}`).current;
  const close = useRef(p.onClose);
  close.current = p.onClose;

  // A layout effect: it runs before the browser paints the dialog, so an
  // Esc pressed the moment it shows is not lost.
  useLayoutEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    const first =
      p.initial === 'box' ? box.current : ((p.initial as { current: HTMLElement | null } | undefined)?.current ?? box.current?.querySelector<HTMLElement>(FOCUSABLE));
    (first ?? box.current)?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        close.current();
        return;
      }
      if (e.key !== 'Tab' || !box.current) return;
      const items = [...box.current.querySelectorAll<HTMLElement>(FOCUSABLE)];
      if (!items.length) return;
      const i = items.indexOf(document.activeElement as HTMLElement);
      if (e.shiftKey && i <= 0) {
        e.preventDefault();
        items[items.length - 1].focus();
      } else if (!e.shiftKey && i === items.length - 1) {
        e.preventDefault();
        items[0].focus();
      }
    };
    window.addEventListener('keydown', onKey, true);
    return () => {
      window.removeEventListener('keydown', onKey, true);
      if (before && document.contains(before)) before.focus();
    };
  }, []);

  return (
    <div class="c-backdrop" onMouseDown={(e) => e.target === e.currentTarget && p.onClose()}>
      <div class={`c-dialog${p.wide ? ' wide' : ''}`} role="dialog" aria-modal="true" aria-labelledby={id} ref={box} tabIndex={-1}>
        <div class="c-dialog-head">
          <h2 id={id}>{p.title}</h2>
          <button type="button" class="c-icon-btn" aria-label={p.closeLabel} onClick={p.onClose}>
            <CloseIcon size={18} />
          </button>
        </div>
        {p.children}
      </div>
    </div>
  );
}
