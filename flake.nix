{
  description = "wgmesh: gossip-based full-mesh WireGuard agent (package and NixOS module)";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-24.05";

  # The package is built from the npm tarball of this tree: run `npm run build && npm run pack`
  # first, then use the flake as `path:` (the tarball is not tracked by git, so a git flake
  # would not see it), e.g. `nix build path:.#wgmesh`.
  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAll = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      overlay = final: _prev: {
        wgmesh = final.callPackage ./nix/package.nix { src = ./packaging/npm/wgmesh-0.1.0.tgz; };
      };
    in
    {
      overlays.default = overlay;
      packages = forAll (pkgs: rec {
        wgmesh = (overlay pkgs pkgs).wgmesh;
        default = wgmesh;
      });
      nixosModules.default = {
        imports = [ ./nix/module.nix ];
        nixpkgs.overlays = [ overlay ];
      };
      nixosModules.wgmesh = self.nixosModules.default;
    };
}
