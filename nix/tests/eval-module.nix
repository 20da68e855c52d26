# Evaluates nix/module.nix against nix/tests/stub-lib.nix and stub packages, the way the NixOS
# module system would for the parts the module uses: option defaults filled in and type-checked
# (submodules and freeform settings included), then mkIf/mkMerge/mkDefault resolved.
#   nix-instantiate --eval --strict --json nix/tests/eval-module.nix --arg cfg '{ enable = true; }'
# Returns { config = <resolved config>; failedAssertions = [ messages ]; }.
{ cfg ? { } }:
let
  lib = import ./stub-lib.nix;
  pkgs = {
    wgmesh = "/nix/store/00000000000000000000000000000000-wgmesh-0.1.0";
    runtimeShell = "/nix/store/00000000000000000000000000000000-bash/bin/bash";
    iproute2 = "iproute2"; wireguard-tools = "wireguard-tools"; wireguard-go = "wireguard-go";
    gnugrep = "gnugrep"; coreutils = "coreutils";
  };

  # option tree + user values → values, checked against each option's type
  fill = path: opts: user:
    let
      unknown = builtins.filter (n: !(opts ? ${n})) (builtins.attrNames user);
    in
    if unknown != [ ] then throw "unknown option ${path}.${builtins.head unknown}"
    else builtins.mapAttrs
      (n: o:
        let p = "${path}.${n}"; in
        if lib.isOption o then value p o (user.${n} or null) (user ? ${n})
        else fill p o (user.${n} or { }))
      opts;

  value = p: o: v: given:
    let
      t = o.type;
      raw = if given then v else if o ? default then o.default else throw "option ${p} has no value";
    in
    if t ? submodule then
      let
        sub = t.submodule;
        declared = sub.options or { };
        extra = builtins.removeAttrs raw (builtins.attrNames declared);
        freeOk = sub ? freeformType && sub.freeformType.check extra;
      in
      if extra != { } && !freeOk then throw "option ${p}: ${builtins.toJSON extra} is not allowed"
      else fill p declared (builtins.intersectAttrs declared raw) // extra
    else if !(t.check raw) then throw "option ${p}: value ${show raw} is not of type ${t.name}"
    else raw;

  # never toJSON a path: that would copy it into the store
  show = v: if builtins.typeOf v == "path" then "the path literal ${toString v}" else builtins.toJSON v;

  module = import ../module.nix { inherit config lib pkgs; };
  config = fill "" module.options { services.wgmesh = cfg; };

  resolve = x:
    if builtins.isAttrs x && (x._type or "") == "if" then (if x.condition then resolve x.content else { })
    else if builtins.isAttrs x && (x._type or "") == "merge" then builtins.foldl' (a: b: a // resolve b) { } x.contents
    else if builtins.isAttrs x && (x._type or "") == "override" then resolve x.content
    else if builtins.isAttrs x then builtins.mapAttrs (_: resolve) x
    else if builtins.isList x then map resolve x
    else x;

  resolved = resolve module.config;
in
{
  config = builtins.removeAttrs resolved [ "assertions" ];
  failedAssertions = map (a: a.message) (builtins.filter (a: !a.assertion) (resolved.assertions or [ ]));
}
