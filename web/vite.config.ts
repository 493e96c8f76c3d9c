// The pages Kefu serves (/chat and /agent), built with hashed asset
// names into dist/, which the `kefu` binary embeds.
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2020',
    modulePreload: { polyfill: false },
    rollupOptions: {
      input: { chat: 'chat.html', agent: 'agent.html' },
    },
  },
});
