// Copies the pinned hls.js build into web/vendor, where the Go binary embeds it.
import { copyFileSync } from 'node:fs';
copyFileSync('node_modules/hls.js/dist/hls.min.js', 'web/vendor/hls.min.js');
copyFileSync('node_modules/hls.js/LICENSE', 'web/vendor/hls.js.LICENSE');
console.log('web/vendor/hls.min.js updated');
