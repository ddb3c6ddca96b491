// Takes the README's screenshots of a running skyhold (e.g. ./scripts/demo)
// in headless Chromium (Debian's `chromium` package) through playwright-core:
//
//   npm install --prefix /tmp/shot playwright-core
//   NODE_PATH=/tmp/shot/node_modules node docs/screenshot.mjs URL USER PASSWORD
import { chromium } from 'playwright-core';

const [url, user, password] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
await page.goto(`${url}/login?next=/instances`);
await page.fill('#username', user);
await page.fill('#password', password);
await page.click('button[type=submit]');
await page.waitForURL(/\/instances/);
await page.goto(`${url}/instances?sort=-launch_time`);
await page.screenshot({ path: 'docs/instances.png' });
await page.goto(`${url}/`);
await page.screenshot({ path: 'docs/dashboard.png', fullPage: true });
await browser.close();
