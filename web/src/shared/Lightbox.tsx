// A picture at full size over the chat; Esc, the close button or a click on
// the backdrop closes it, and focus returns to where it was.
import { useLayoutEffect, useRef } from 'preact/hooks';
import type { T } from '../locales';
import { CloseIcon } from './icons';

export function Lightbox({ src, t, onClose }: { src: string; t: T; onClose: () => void }) {
  const closeRef = useRef<HTMLButtonElement>(null);
  // A layout effect: it runs before the browser paints the dialog, so an
  // Esc pressed the moment it shows is not lost.
  useLayoutEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    closeRef.current?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        e.stopPropagation();
        onClose();
      }
    };
    window.addEventListener('keydown', onKey, true);
    return () => {
      window.removeEventListener('keydown', onKey, true);
      before?.focus?.();
    };
  }, []);
  return (
    <div class="lightbox" role="dialog" aria-modal="true" aria-label={t('picture')} onClick={(e) => e.target === e.currentTarget && onClose()}>
      <img src={src} alt={t('picture')} />
      <button type="button" class="lightbox-close" ref={closeRef} aria-label={t('closePicture')} onClick={onClose}>
        <CloseIcon size={24} />
      </button>
    </div>
  );
}
