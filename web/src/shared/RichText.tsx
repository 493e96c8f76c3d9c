// Message text as Preact nodes: plain runs as text, safe URLs as anchors that
// open in a new tab. Line breaks are kept by CSS (white-space: pre-wrap).
import { linkify } from './linkify';

export function RichText({ text }: { text: string }) {
  return (
    <>
      {linkify(text).map((s, i) =>
        s.href ? (
          <a key={i} href={s.href} target="_blank" rel="noopener noreferrer">
            {s.text}
          </a>
        ) : (
          s.text
        ),
      )}
    </>
  );
}
