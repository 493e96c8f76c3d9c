// The rating invitation at the end of a service: five star buttons, an
// optional comment, and a thank-you once rated (or when already rated).
import { useState } from 'preact/hooks';
import type { T } from '../locales';
import { StarIcon } from '../shared/icons';
import type { Rating } from './store';

export function RatingCard({ t, text, rating, onRate }: { t: T; text: string; rating?: Rating; onRate: (score: number, comment: string) => Promise<void> }) {
  const [score, setScore] = useState(0);
  const [hover, setHover] = useState(0);
  const [comment, setComment] = useState('');
  const [busy, setBusy] = useState(false);

  if (rating) {
    return (
      <div class="rating done" role="status">
        <div class="stars static" aria-label={rating.score === 1 ? t('stars1') : t('starsN', { n: rating.score })}>
          {[1, 2, 3, 4, 5].map((n) => (
            <span key={n} class={n <= rating.score ? 'on' : ''}>
              <StarIcon filled={n <= rating.score} />
            </span>
          ))}
        </div>
        <div class="rating-thanks">{t('ratingThanks')}</div>
      </div>
    );
  }

  const shown = hover || score;
  const submit = async (e: Event) => {
    e.preventDefault();
    if (!score || busy) return;
    setBusy(true);
    try {
      await onRate(score, comment);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="rating" onSubmit={submit}>
      <div class="rating-title">{text || t('rateTitle')}</div>
      <div class="stars" role="group" aria-label={t('rateTitle')} onMouseLeave={() => setHover(0)}>
        {[1, 2, 3, 4, 5].map((n) => (
          <button
            key={n}
            type="button"
            class={n <= shown ? 'star on' : 'star'}
            aria-label={n === 1 ? t('stars1') : t('starsN', { n })}
            aria-pressed={n === score}
            onClick={() => setScore(n)}
            onMouseEnter={() => setHover(n)}
          >
            <StarIcon filled={n <= shown} />
          </button>
        ))}
      </div>
      <textarea
        class="rating-comment"
        aria-label={t('comment')}
        placeholder={t('commentPlaceholder')}
        maxLength={2000}
        rows={2}
        value={comment}
        onInput={(e) => setComment((e.currentTarget as HTMLTextAreaElement).value)}
      />
      <button type="submit" class="rating-submit" disabled={!score || busy}>
        {t('submitRating')}
      </button>
    </form>
  );
}
