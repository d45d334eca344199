#!/bin/sh
# Tries every place outside /output a tool might write to; each must be refused.
for place in /tool/planted /input/planted /usr/planted /etc/planted /planted /var/planted; do
  if echo planted > "$place" 2>/dev/null; then echo "wrote $place"; fi
done
set -e
echo "overwrite" > /input/image.nii
