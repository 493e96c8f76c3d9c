// Dropping files onto a chat: both apps take them the same way.
import { useState } from 'preact/hooks';

/**
 * Whether files are being dragged over the element, and the handlers that
 * hand dropped files to `onFiles` while `enabled`.
 */
export function useFileDrop(enabled: boolean, onFiles: (files: File[]) => void) {
  const [dragging, setDragging] = useState(false);
  const handlers = {
    onDragOver: (e: DragEvent) => {
      if (enabled && e.dataTransfer?.types.includes('Files')) {
        e.preventDefault();
        setDragging(true);
      }
    },
    onDragLeave: (e: DragEvent) => {
      if (e.currentTarget === e.target) setDragging(false);
    },
    onDrop: (e: DragEvent) => {
      setDragging(false);
      const files = Array.from(e.dataTransfer?.files ?? []);
      if (files.length && enabled) {
        e.preventDefault();
        onFiles(files);
      }
    },
  };
  return { dragging, handlers };
}
