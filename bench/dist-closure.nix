# A closure of 31 small store paths in 5 levels of references (a binary
# tree), whose top has a program: the shape of a tool with its libraries,
# for bench/distributable.sh.  Built from the host's /bin/sh only.
let
  node = level: i:
    let
      kids = if level >= 4 then [ ] else [ (node (level + 1) (2 * i)) (node (level + 1) (2 * i + 1)) ];
    in derivation {
      name = "dist-bench-${toString level}-${toString i}";
      system = builtins.currentSystem;
      builder = "/bin/sh";
      PATH = "/usr/bin:/bin";
      args = [ "-ec" ''
        mkdir -p $out/share
        echo "${toString level} ${toString i}" > $out/share/id
        for k in ${toString kids}; do echo "$k" >> $out/share/deps; done
        ${if level == 0 then ''
          mkdir -p $out/bin
          printf '#!/bin/sh\necho ready\n' > $out/bin/dist-bench
          chmod +x $out/bin/dist-bench
        '' else ""}
      '' ];
    };
in node 0 0
