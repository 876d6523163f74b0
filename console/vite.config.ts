// The web console: built into console/dist and served by the api role under /console/.
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: '/console/',
  plugins: [react()],
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true, chunkSizeWarningLimit: 400 },
  // `npm run console:dev`: the console with hot reload, talking to a local `kvmfleet serve`.
  server: { proxy: { '/api': 'http://127.0.0.1:8080' } },
});
