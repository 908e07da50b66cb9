#!/bin/sh
# Refreshes the Twilio Voice JavaScript SDK the console serves (console/static/vendor/).
#
# The bundle (dist/twilio.min.js, ~300 KB, self-contained) is committed, so neither `make run`
# nor the tests need npm; run this only to change its version:  sh console/vendor.sh 2.18.5
# `npm pack` fetches the one tarball from the npm registry and checks its integrity; nothing is
# installed and no node_modules is left behind. The browser never loads it from a CDN.
set -eu

VERSION="${1:-2.18.5}"
PACKAGE="@twilio/voice-sdk"
here=$(cd "$(dirname "$0")" && pwd)
vendor="$here/static/vendor"

command -v npm >/dev/null 2>&1 || {
    echo "console/vendor.sh: npm is needed to fetch $PACKAGE (sudo apt-get install npm)" >&2
    exit 1
}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

tarball=$(cd "$work" && npm pack --silent "$PACKAGE@$VERSION")
tar -xzf "$work/$tarball" -C "$work" package/dist/twilio.min.js package/LICENSE.md
mkdir -p "$vendor"
cp "$work/package/dist/twilio.min.js" "$vendor/twilio.min.js"
cp "$work/package/LICENSE.md" "$vendor/twilio-voice-sdk.LICENSE.md"
sum=$(sha256sum "$vendor/twilio.min.js" | cut -d' ' -f1)
printf '%s@%s sha256:%s\n' "$PACKAGE" "$VERSION" "$sum" > "$vendor/twilio-voice-sdk.VERSION"
echo "console/vendor.sh: $PACKAGE $VERSION -> console/static/vendor/twilio.min.js"
