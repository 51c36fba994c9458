# The bundled demo closure: two small store paths, one referring to the other.
# scripts/make-demo.sh builds it with real Nix and publishes it, signed, in demo/cache.
let
  mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "/bin/sh";
    PATH = "/usr/bin:/bin";
    args = [ "-c" script ];
  };
  greeting = mk "runix-demo-greeting-1.0" ''
    mkdir -p $out/share
    echo "Hello from a Nix store path, unpacked and verified by runix." > $out/share/greeting.txt
  '';
in
mk "runix-demo-hello-1.0" ''
  mkdir -p $out/bin $out/share/doc
  printf '#!/bin/sh\ncat ${greeting}/share/greeting.txt\n' > $out/bin/hello
  chmod +x $out/bin/hello
  ln -s ${greeting}/share/greeting.txt $out/share/greeting.txt
  echo "runix demo" > $out/share/doc/README
''
