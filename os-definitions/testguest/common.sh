# Shared by the testguest OS scripts (sourced, not run).
#
# The disk format the test guest's init reads (lib/tools/test_guest.py,
# doc/test-guest.rst): the first 512 bytes of disk 0 hold one text line,
# "ganeti-test-guest name=<instance> variant=<variant> marker=<text>",
# padded with zero bytes; the guest prints it at boot. The guest counts its
# boots in a line "guest-wrote <N>" in the sector at byte 4096, which create
# clears. The guest boots from a kernel and an initramfs on the node
# (tools/make-test-guest), so nothing else is written.

MARKER_SIZE=512
GUEST_WRITE_OFFSET=4096

usage() {
  echo "usage: $0 (run by Ganeti with the OS API environment, see ganeti-os-interface(7))" >&2
  exit 1
}

case "${1:-}" in
  -h|--help) usage ;;
esac

log() {
  if [ "${DEBUG_LEVEL:-0}" != 0 ]; then
    echo "testguest: $*" >&2
  fi
}

disk_size() {
  # $1: device or file; prints its size in bytes
  if [ -b "$1" ]; then
    blockdev --getsize64 "$1"
  else
    stat -L -c %s "$1"
  fi
}

write_marker() {
  # $1: device or file, $2: instance name
  _line="ganeti-test-guest name=$2 variant=${OS_VARIANT:-default} marker=${OSP_MARKER:-}"
  _size=$(disk_size "$1")
  if [ "$_size" -lt "$MARKER_SIZE" ]; then
    echo "testguest: $1 has $_size bytes, at least $MARKER_SIZE are needed" >&2
    exit 1
  fi
  log "writing the marker to $1"
  { printf '%s\n' "$_line"; dd if=/dev/zero bs=1 count=$((MARKER_SIZE - ${#_line} - 1)) 2>/dev/null; } \
    | dd of="$1" bs=$MARKER_SIZE count=1 conv=notrunc 2>/dev/null
}

clear_guest_write() {
  # $1: device or file; zero the guest's boot counter (if the disk has room)
  if [ "$(disk_size "$1")" -ge $((GUEST_WRITE_OFFSET + MARKER_SIZE)) ]; then
    dd if=/dev/zero of="$1" bs=$MARKER_SIZE seek=$((GUEST_WRITE_OFFSET / MARKER_SIZE)) \
      count=1 conv=notrunc 2>/dev/null
  fi
}
