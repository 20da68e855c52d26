# The wgmesh package from its npm tarball (`npm run build && npm run pack` →
# packaging/npm/wgmesh-<version>.tgz, or the one published on the npm registry): the tarball is
# the whole program (one bundled file, its loader and V8 code cache; no dependencies), so nothing is fetched or built here.
# bin/wgmesh runs it with Node.js 20 and finds ip, wg and wireguard-go on its PATH.
{ lib
, stdenvNoCC
, makeWrapper
, nodejs_20
, iproute2
, wireguard-tools
, wireguard-go
, src
, version ? "0.1.0"
}:

stdenvNoCC.mkDerivation {
  pname = "wgmesh";
  inherit version src;
  nativeBuildInputs = [ makeWrapper ];
  # an npm tarball unpacks into package/
  sourceRoot = "package";
  dontBuild = true;
  installPhase = ''
    runHook preInstall
    mkdir -p $out/lib/wgmesh $out/bin $out/share
    cp dist/wgmesh.mjs dist/wgmesh.cjs dist/wgmesh.cjs.cache $out/lib/wgmesh/
    cp -r share/man share/bash-completion $out/share/
    mkdir -p $out/share/wgmesh && cp -r share/systemd $out/share/wgmesh/
    makeWrapper ${nodejs_20}/bin/node $out/bin/wgmesh \
      --add-flags $out/lib/wgmesh/wgmesh.mjs \
      --prefix PATH : ${lib.makeBinPath [ iproute2 wireguard-tools wireguard-go ]}
    runHook postInstall
  '';
  meta = {
    description = "Gossip-based full-mesh WireGuard agent";
    license = lib.licenses.asl20;
    platforms = lib.platforms.linux;
    mainProgram = "wgmesh";
  };
}
