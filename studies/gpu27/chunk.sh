# chunk.sh NAME V1 V2 ...: one solid tar.xz of the staged releases, the same file of each release side by side
set -euo pipefail
name=$1; shift
cd stage
( cd mlx-$1 && find . -type f -o -type l | sort ) > ../$name.files
: > ../$name.list
while read -r p; do for v in "$@"; do [ -e "mlx-$v/$p" ] || [ -L "mlx-$v/$p" ] && echo "mlx-$v/${p#./}" >> ../$name.list; done; done < ../$name.files
for v in "$@"; do ( cd mlx-$v && find . -type f -o -type l ) | sed "s|^\./|mlx-$v/|"; done | sort > ../$name.all
sort ../$name.list > ../$name.sorted; comm -23 ../$name.all ../$name.sorted >> ../$name.list
tar --no-recursion -cf - -T ../$name.list | nice xz -T1 --lzma2=preset=6,dict=192MiB > ../$name.tar.xz
ls -la ../$name.tar.xz
