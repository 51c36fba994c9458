# The benchmark closure: the test closure (glibc, Python and its standard
# library, ...) plus Perl's library and the C/C++ headers, so that it has
# thousands of files and well over 100 MB of NAR.
{ multiarch, interp }:
let
  t = import ../tests/fixtures/closure.nix { inherit multiarch interp; };
  inherit (t) mk;
  perl = mk "perl-lib-5.36" ''
    mkdir -p $out/share $out/lib
    cp -r /usr/share/perl $out/share/perl
    cp -r /usr/lib/${multiarch}/perl $out/lib/perl
  '';
  headers = mk "c-headers-12" ''
    mkdir -p $out/include
    cp -r /usr/include/c++ /usr/include/linux /usr/include/asm-generic /usr/include/${multiarch} \
      /usr/include/*.h $out/include/
  '';
in
mk "bench-env" ''
  mkdir -p $out
  ln -s ${t} $out/env
  ln -s ${t.python} $out/python
  ln -s ${perl} $out/perl
  ln -s ${headers} $out/headers
''
