# Non-flake entry: the package and the NixOS module.
#   nix-build -A wgmesh                      (after `npm run build && npm run pack`)
#   imports = [ (import /path/to/wgmesh {}).nixosModule ];  plus the overlay for pkgs.wgmesh
{ pkgs ? import <nixpkgs> { }
, tarball ? ./packaging/npm/wgmesh-0.1.0.tgz
}:
let
  overlay = final: _prev: {
    wgmesh = final.callPackage ./nix/package.nix { src = tarball; };
  };
in
{
  wgmesh = (overlay pkgs pkgs).wgmesh;
  inherit overlay;
  nixosModule = {
    imports = [ ./nix/module.nix ];
    nixpkgs.overlays = [ overlay ];
  };
}
