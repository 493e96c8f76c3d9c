// The message composer: an auto-growing textarea (Enter sends, Shift+Enter
// breaks the line, nothing is sent mid-IME-composition), an emoji picker, an
// attach button, and pasting images. The console adds its own tools, a
// popup above the box (quick replies) and a first look at each key.
import type { ComponentChildren, Ref } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { T } from '../locales';
import { EMOJI } from './emoji';
import { ClipIcon, SendIcon, SmileIcon } from './icons';

const MAX_HEIGHT = 128;

export interface ComposerProps {
  t: T;
  onSend: (text: string) => boolean;
  onFiles: (files: File[]) => void;
  onTyping: () => void;
  /** Controlled text (e.g. a draft per conversation); else the composer keeps its own. */
  value?: string;
  onValue?: (text: string) => void;
  /** Sees each key first; returning true means it was handled. */
  onKey?: (e: KeyboardEvent) => boolean;
  /** More tool buttons, before Send. */
  tools?: ComponentChildren;
  /** Shown above the box, like the emoji picker. */
  popup?: ComponentChildren;
  disabled?: boolean;
  placeholder?: string;
  inputRef?: Ref<HTMLTextAreaElement>;
  /** Extra attributes for the textarea (ARIA for a popup). */
  inputAria?: Record<string, string | boolean | undefined>;
}

export function Composer(p: ComposerProps) {
  const { t, onSend, onFiles, onTyping } = p;
  const [own, setOwn] = useState('');
  const text = p.value ?? own;
  const setText = (s: string) => (p.onValue ? p.onValue(s) : setOwn(s));
  const [picker, setPicker] = useState(false);
  const localArea = useRef<HTMLTextAreaElement>(null);
  const area = (p.inputRef as { current: HTMLTextAreaElement | null } | undefined) ?? localArea;
  const fileInput = useRef<HTMLInputElement>(null);
  const emojiBtn = useRef<HTMLButtonElement>(null);
  const pickerRef = useRef<HTMLDivElement>(null);

  const grow = () => {
    const a = area.current;
    if (!a) return;
    a.style.height = 'auto';
    a.style.height = `${Math.min(a.scrollHeight, MAX_HEIGHT)}px`;
  };
  useEffect(grow, [text]);

  useEffect(() => {
    if (!picker) return;
    pickerRef.current?.querySelector('button')?.focus();
    const onDown = (e: PointerEvent) => {
      const n = e.target as Node;
      if (!pickerRef.current?.contains(n) && !emojiBtn.current?.contains(n)) setPicker(false);
    };
    document.addEventListener('pointerdown', onDown);
    return () => document.removeEventListener('pointerdown', onDown);
  }, [picker]);

  const send = () => {
    if (p.disabled) return;
    if (onSend(text)) setText('');
    area.current?.focus();
  };

  const onKeyDown = (e: KeyboardEvent) => {
    // 229: the key went to an input method (Safari reports it this way).
    if (e.isComposing || e.keyCode === 229) return;
    if (p.onKey?.(e)) return;
    if (e.key !== 'Enter' || e.shiftKey) return;
    e.preventDefault();
    send();
  };

  const insert = (emoji: string) => {
    const a = area.current;
    const start = a?.selectionStart ?? text.length;
    const end = a?.selectionEnd ?? text.length;
    const next = text.slice(0, start) + emoji + text.slice(end);
    setText(next);
    requestAnimationFrame(() => {
      if (!a) return;
      a.focus();
      a.selectionStart = a.selectionEnd = start + emoji.length;
    });
  };

  const onPickerKey = (e: KeyboardEvent) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      setPicker(false);
      emojiBtn.current?.focus();
    }
  };

  const onPaste = (e: ClipboardEvent) => {
    const files = Array.from(e.clipboardData?.files ?? []);
    if (files.length) {
      e.preventDefault();
      onFiles(files);
    }
  };

  return (
    <div class="composer">
      {picker ? (
        <div class="emoji-picker" ref={pickerRef} role="dialog" aria-label={t('emojiPicker')} onKeyDown={onPickerKey}>
          {EMOJI.map((e) => (
            <button type="button" key={e} class="emoji" aria-label={e} onClick={() => insert(e)}>
              {e}
            </button>
          ))}
        </div>
      ) : null}
      {p.popup}
      <div class="composer-box">
        <textarea
          ref={area}
          class="input"
          rows={1}
          aria-label={t('message')}
          placeholder={p.placeholder ?? t('placeholder')}
          value={text}
          maxLength={10000}
          enterkeyhint="send"
          disabled={p.disabled}
          {...p.inputAria}
          onInput={(e) => {
            setText((e.currentTarget as HTMLTextAreaElement).value);
            onTyping();
          }}
          onKeyDown={onKeyDown}
          onPaste={onPaste}
        />
        <div class="tools">
          <button
            type="button"
            class="tool"
            ref={emojiBtn}
            aria-label={t('emoji')}
            aria-expanded={picker}
            aria-haspopup="dialog"
            disabled={p.disabled}
            onClick={() => setPicker(!picker)}
          >
            <SmileIcon />
          </button>
          <button type="button" class="tool" aria-label={t('attachFile')} disabled={p.disabled} onClick={() => fileInput.current?.click()}>
            <ClipIcon />
          </button>
          {p.tools}
          <input
            ref={fileInput}
            type="file"
            class="hidden-input"
            tabIndex={-1}
            aria-hidden="true"
            multiple
            onChange={(e) => {
              const input = e.currentTarget as HTMLInputElement;
              const files = Array.from(input.files ?? []);
              input.value = '';
              if (files.length) onFiles(files);
            }}
          />
          <button type="button" class="send" aria-label={t('send')} disabled={p.disabled || !text.trim()} onClick={send}>
            <SendIcon />
          </button>
        </div>
      </div>
    </div>
  );
}
