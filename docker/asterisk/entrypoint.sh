#!/bin/sh
# Render Puente's Asterisk contract for this container, then run the command (Asterisk).
#
#   /etc/puente-asterisk/*.conf   asterisk_conf/ from the repository (read-only mount)
#   /etc/asterisk-local/*.conf    this site's files (pjsip.conf with the carrier...), optional;
#                                 each replaces the shipped file of the same name
#
# Then, in the copies under /etc/asterisk (the mounted files are never changed):
#   manager.conf     AMI listens on the container network and permits PUENTE_HOST only; the
#                    `puente` user's secret is PUENTE_AMI_SECRET (the placeholder is refused)
#   extensions.conf  [globals] PUENTE_AGI / PUENTE_AUDIOSOCKET point at PUENTE_HOST
#   pjsip.conf       external addresses when ASTERISK_EXTERNAL_ADDRESS is set (NAT)
set -eu

# The paths are fixed in the image; the variables exist for tests (tests/asterisk_conf).
src=${PUENTE_ASTERISK_SRC:-/etc/puente-asterisk}
local_dir=${PUENTE_ASTERISK_LOCAL:-/etc/asterisk-local}
dst=${PUENTE_ASTERISK_DST:-/etc/asterisk}

fail() {
    echo "puente-asterisk: $*" >&2
    exit 1
}

: "${PUENTE_HOST:?set PUENTE_HOST to the Puente container address}"
secret=${PUENTE_AMI_SECRET:-}
case "$secret" in
    "" | CHANGE_ME*) fail "set PUENTE_AMI_SECRET (docker/.env); the placeholder is refused" ;;
    *[!A-Za-z0-9._~+/=-]*) fail "PUENTE_AMI_SECRET: use only letters, digits and . _ ~ + / = -" ;;
esac
[ "${#secret}" -ge 16 ] || fail "PUENTE_AMI_SECRET: use at least 16 characters"

for f in extensions.conf manager.conf pjsip.conf queues.conf; do
    [ -f "$src/$f" ] || fail "$src/$f is missing (mount asterisk_conf/ at $src)"
    cp "$src/$f" "$dst/$f"
done
if [ -d "$local_dir" ]; then
    for f in "$local_dir"/*.conf; do
        [ -e "$f" ] || continue
        cp "$f" "$dst/$(basename "$f")"
        echo "puente-asterisk: using $f"
    done
fi

# manager.conf: the secret line is rewritten by the shell (no sed escaping of the secret).
tmp=$(mktemp)
in_user=0
while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
        "["*) [ "$line" = "[puente]" ] && in_user=1 || in_user=0 ;;
    esac
    case "$line" in
        "bindaddr = 127.0.0.1") line="bindaddr = 0.0.0.0" ;;
        "permit = 127.0.0.1/255.255.255.255") line="permit = $PUENTE_HOST/255.255.255.255" ;;
        "secret = "*) [ "$in_user" = 1 ] && line="secret = $secret" ;;
    esac
    printf '%s\n' "$line"
done <"$dst/manager.conf" >"$tmp"
cat "$tmp" >"$dst/manager.conf"
rm -f "$tmp"
grep -q "^secret = $secret\$" "$dst/manager.conf" || fail "manager.conf: no [puente] secret line"

sed -i \
    -e "s|^PUENTE_AUDIOSOCKET = .*\$|PUENTE_AUDIOSOCKET = $PUENTE_HOST:${PUENTE_AUDIOSOCKET_PORT:-9092}|" \
    -e "s|^PUENTE_AGI = .*\$|PUENTE_AGI = $PUENTE_HOST:${PUENTE_AGI_PORT:-4573}|" \
    "$dst/extensions.conf"

if [ -n "${ASTERISK_EXTERNAL_ADDRESS:-}" ]; then
    sed -i \
        -e "s|^;external_media_address = .*\$|external_media_address = $ASTERISK_EXTERNAL_ADDRESS|" \
        -e "s|^;external_signaling_address = .*\$|external_signaling_address = $ASTERISK_EXTERNAL_ADDRESS|" \
        "$dst/pjsip.conf"
fi

if [ "$(id -u)" = 0 ] && id asterisk >/dev/null 2>&1; then
    chown -R asterisk:asterisk "$dst" /var/lib/asterisk/astdb /var/spool/asterisk
fi
chmod 0640 "$dst/manager.conf" "$dst/pjsip.conf"
exec "$@"
