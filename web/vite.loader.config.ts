// widget.js, the loader a site embeds with one script tag. It keeps a fixed
// name (sites link to it), is one self-contained file, and must stay tiny.
import { defineConfig } from 'vite';

export default defineConfig({
  build: {
    outDir: 'dist',
    emptyOutDir: false,
    target: 'es2020',
    lib: {
      entry: 'src/loader/index.ts',
      name: 'KefuLoader',
      formats: ['iife'],
      fileName: () => 'widget.js',
    },
  },
});
