# The bundled demo closure, built with real Nix from the host's own compiler
# and C library (scripts/make-demo.sh publishes it, signed, in demo/cache):
#   glibc      the host's loader and libc, copied into the store
#   libgreeting  a store library
#   data       a leaf path with a text file
#   hello      a program whose ELF interpreter is the store's loader and whose
#              RUNPATH names the store library and glibc; it reads the data path
{ multiarch, interp }:
let
  mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    args = [ "-ec" script ];
  };
  loader = baseNameOf interp;
  glibc = mk "runix-demo-glibc-2.36" ''
    mkdir -p $out/lib
    cp -L /lib/${multiarch}/${loader} /lib/${multiarch}/libc.so.6 $out/lib/
    chmod u+w $out/lib/*
  '';
  data = mk "runix-demo-data-1.0" ''
    mkdir -p $out/share/runix-demo
    echo "read from $out" > $out/share/runix-demo/message.txt
  '';
  lib = mk "runix-demo-libgreeting-1.0" ''
    mkdir -p $out/lib
    gcc -shared -fPIC -O2 -s -o $out/lib/libgreeting.so ${./src/libgreeting.c}
    patchelf --set-rpath ${glibc}/lib $out/lib/libgreeting.so
  '';
in
mk "runix-demo-hello-1.0" ''
  mkdir -p $out/bin
  gcc -O2 -s -DDATA='"${data}"' -o $out/bin/runix-demo ${./src/hello.c} -L${lib}/lib -lgreeting
  patchelf --set-interpreter ${glibc}/lib/${loader} --set-rpath ${lib}/lib:${glibc}/lib \
    $out/bin/runix-demo
''
