# Shared by the noop OS scripts (sourced, not run).
# The image format: the first 512 bytes of disk 0 hold one text line,
# "ganeti-noop-os name=<instance> os=<os> variant=<variant> message=<text>",
# padded with zero bytes. Nothing else is written, so any disk size works.

MARKER_SIZE=512

usage() {
  echo "usage: $0 (run by Ganeti with the OS API environment, see ganeti-os-interface(7))" >&2
  exit 1
}

case "${1:-}" in
  -h|--help) usage ;;
esac

log() {
  if [ "${DEBUG_LEVEL:-0}" != 0 ]; then
    echo "noop: $*" >&2
  fi
}

write_marker() {
  # $1: device or file, $2: instance name
  _line="ganeti-noop-os name=$2 os=${INSTANCE_OS:-} variant=${OS_VARIANT:-default} message=${OSP_MESSAGE:-}"
  log "writing the marker to $1"
  { printf '%s\n' "$_line"; dd if=/dev/zero bs=1 count=$((MARKER_SIZE - ${#_line} - 1)) 2>/dev/null; } \
    | dd of="$1" bs=$MARKER_SIZE count=1 conv=notrunc 2>/dev/null
}
