// The emoji offered by the composer's picker: common, widely supported ones.
export const EMOJI = [
  '😀', '😁', '😂', '🤣', '😊', '😍', '😘', '😎',
  '🤔', '😅', '😉', '🙂', '🙃', '😢', '😭', '😡',
  '😮', '😴', '🥰', '🤗', '🙏', '👍', '👎', '👌',
  '👏', '💪', '🤝', '👋', '❤️', '💔', '🎉', '🔥',
  '✨', '⭐', '✅', '❌', '❓', '💯', '🌹', '☕',
] as const;
