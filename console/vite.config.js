// The console's build: static files with relative paths, no runtime CDN, assets named by their content's hash.
import { defineConfig } from "vite";

export default defineConfig({
  // Relative asset paths: the same build is served at /console/ locally and at the distribution's root on AWS.
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 200 },
});
