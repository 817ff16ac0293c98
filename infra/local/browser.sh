#!/usr/bin/env bash
# The real browser for tests/browser (called by infra/local/setup.sh): Debian's chromium and chromium-driver,
# plus a small CJK font (fonts-wqy-microhei) so the desk's Chinese labels render in screenshots. Installs with
# apt-get only what is missing (one `apt-get update` first, only then); quiet and idempotent. Without root or
# apt-get it only says what is missing (the browser tests then skip with the same message).
# Usage: infra/local/browser.sh      Env: KEFU_CHROMIUM (default /usr/bin/chromium), KEFU_CHROMEDRIVER
#                                         (default /usr/bin/chromedriver)
set -euo pipefail
CHROMIUM=${KEFU_CHROMIUM:-/usr/bin/chromium}
DRIVER=${KEFU_CHROMEDRIVER:-/usr/bin/chromedriver}

missing=()
[ -x "$CHROMIUM" ] || command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -x "$DRIVER" ] || command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
if command -v dpkg-query >/dev/null 2>&1 &&
  ! dpkg-query -W -f='${Status}' fonts-wqy-microhei 2>/dev/null | grep -q 'install ok installed'; then
  missing+=(fonts-wqy-microhei)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "browser: missing ${missing[*]} (install them with apt-get as root)" >&2
  exit 0
fi
echo "browser: apt-get install ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "browser: apt-get install ${missing[*]} failed" >&2
  exit 1
fi
