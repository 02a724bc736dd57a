// Builds the Elements test app into dist/ (a static single-page app; e2e/lib/elements.js
// serves it beside Latch). No React plugin: esbuild compiles JSX with the automatic runtime.
import { defineConfig } from 'vite';

export default defineConfig({
  esbuild: { jsx: 'automatic' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 4000,
    rollupOptions: {
      // The libraries' "use client" markers are for React Server Components bundlers.
      onwarn(warning, warn) {
        if (warning.code === 'MODULE_LEVEL_DIRECTIVE') return;
        warn(warning);
      },
    },
  },
  logLevel: 'warn',
});
