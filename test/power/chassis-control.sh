#!/bin/sh
# ipmi_sim's chassis_control program for the tests: the simulated machine's power state and boot
# device live in files of the instance directory ($1), so tests can read and preset them.
# ipmi_sim calls: chassis-control.sh <dir> get <parm>... | set <parm> <value>...
# Every set is appended to log. Files: power (0|1), boot (none|pxe|default|cdrom|bios), ignore-soft (present: the "OS" ignores
# a soft shutdown request, as a hung machine would).
dir=$1
op=$2
shift 2
case $op in
get)
  for parm in "$@"; do
    case $parm in
      power) echo "power:$(cat "$dir/power" 2>/dev/null || echo 0)" ;;
      boot) echo "boot:$(cat "$dir/boot" 2>/dev/null || echo none)" ;;
    esac
  done
  ;;
set)
  echo "$*" >> "$dir/log"
  while [ $# -ge 2 ]; do
    parm=$1
    value=$2
    shift 2
    case $parm in
      power) echo "$value" > "$dir/power" ;;
      boot) echo "$value" > "$dir/boot" ;;
      shutdown) [ -e "$dir/ignore-soft" ] || echo 0 > "$dir/power" ;;
      reset) ;;  # the machine restarts; its power state does not change
    esac
  done
  ;;
esac
exit 0
