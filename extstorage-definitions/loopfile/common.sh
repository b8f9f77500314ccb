# Shared by the loopfile ExtStorage scripts (sourced, not run).
#
# Each volume is a sparse file "$DATA_DIR/$VOL_NAME.img", reached through a
# loop device while attached. DATA_DIR is the "dir" parameter (EXTP_DIR),
# by default /srv/ganeti/extstorage-loopfile, under the node's root
# ($GANETI_ROOTDIR) in a virtual cluster.

set -u
# Volume files hold guest data: readable by root only
umask 077

DEFAULT_DIR=/srv/ganeti/extstorage-loopfile

die() {
  echo "loopfile: $*" >&2
  exit 1
}

usage() {
  echo "usage: $0 (run by Ganeti with the ExtStorage environment, see ganeti-extstorage-interface(7))" >&2
  exit 1
}

# Scripts other than verify take no arguments
if [ "${LOOPFILE_ARGS_OK:-}" != 1 ]; then
  [ $# -eq 0 ] || usage
fi
case "${1:-}" in
  -h|--help) usage ;;
esac

# A volume or snapshot name becomes a file name: no "/", no "..", not empty,
# no leading "." or "-"
check_name() {
  # $1: what, $2: the name
  case "$2" in
    ""|.*|-*|*/*|*..*) die "invalid $1 '$2'" ;;
  esac
  case "$2" in
    *[!A-Za-z0-9._+:@=-]*) die "invalid $1 '$2' (allowed: letters, digits and ._+:@=-)" ;;
  esac
}

check_size() {
  # $1: variable name, $2: value (MiB)
  case "$2" in
    ""|*[!0-9]*) die "$1 must be a positive integer (MiB), got '$2'" ;;
  esac
  [ "$2" -gt 0 ] || die "$1 must be a positive integer (MiB), got '$2'"
}

check_dir_param() {
  if [ -n "${EXTP_DIR:-}" ]; then
    case "$EXTP_DIR" in
      /*) ;;
      *) die "the dir parameter must be an absolute path, got '$EXTP_DIR'" ;;
    esac
    case "$EXTP_DIR" in
      *"
"*|*/../*|*/..|*/./*|*/.) die "the dir parameter must be a normalised path, got '$EXTP_DIR'" ;;
    esac
  fi
}

check_dir_param
DATA_DIR="${EXTP_DIR:-${GANETI_ROOTDIR:-}$DEFAULT_DIR}"

# Sets IMG (and INFO) for $VOL_NAME
volume_paths() {
  [ -n "${VOL_NAME:-}" ] || die "VOL_NAME is not set"
  check_name "volume name" "$VOL_NAME"
  IMG="$DATA_DIR/$VOL_NAME.img"
  INFO="$DATA_DIR/$VOL_NAME.info"
}

# Serialise the scripts working on one data directory (two attaches at once
# would otherwise set up two loop devices)
lock_dir() {
  mkdir -p "$DATA_DIR" || die "cannot create the data directory $DATA_DIR"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$DATA_DIR/.lock" || die "cannot open the lock file $DATA_DIR/.lock"
    flock -w 300 9 || die "timed out waiting for the lock $DATA_DIR/.lock"
  fi
}

# The loop devices set up on file $1, one a line
loop_devices() {
  losetup -j "$1" | while IFS= read -r _line; do
    printf '%s\n' "${_line%%:*}"
  done
}
