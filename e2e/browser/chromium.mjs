// Launches Debian's Chromium headless with the flags this sandbox needs (no background
// networking: the machine has no internet and refused connections slow Chromium down).
import { chromium } from 'playwright-core';

// extra are more Chromium flags (a fake camera and microphone for the WHIP test).
export async function launch(extra = []) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required', ...extra],
  });
}
