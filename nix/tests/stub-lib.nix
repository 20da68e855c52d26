# A small stand-in for nixpkgs' `lib`, enough to evaluate nix/module.nix without a nixpkgs
# checkout (used by nix/tests/eval-module.nix). Types carry a `check` like nixpkgs' do, so a
# wrong value (e.g. a path literal for meshKeyFile) fails here as it would on NixOS.
let
  mkType = name: check: { _type = "type"; inherit name check; };
  isOption = x: builtins.isAttrs x && (x._type or "") == "option";
in
rec {
  inherit isOption;
  mkOption = attrs: attrs // { _type = "option"; };
  mkEnableOption = what: mkOption { type = types.bool; default = false; description = "Whether to enable ${what}."; };
  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkMerge = contents: { _type = "merge"; inherit contents; };
  mkDefault = content: { _type = "override"; priority = 1000; inherit content; };

  types = rec {
    bool = mkType "bool" builtins.isBool;
    str = mkType "str" builtins.isString;
    int = mkType "int" builtins.isInt;
    port = mkType "port" (v: builtins.isInt v && v >= 0 && v <= 65535);
    package = mkType "package" (v: builtins.isAttrs v || builtins.isString v);
    enum = vs: mkType "enum" (v: builtins.elem v vs);
    nullOr = t: mkType "nullOr ${t.name}" (v: v == null || t.check v) // { inner = t; };
    listOf = t: mkType "listOf ${t.name}" (v: builtins.isList v && builtins.all t.check v);
    attrsOf = t: mkType "attrsOf ${t.name}" (v: builtins.isAttrs v && builtins.all t.check (builtins.attrValues v));
    oneOf = ts: mkType "oneOf" (v: builtins.any (t: t.check v) ts);
    submodule = m: mkType "submodule" builtins.isAttrs // { submodule = m; };
  };

  toUpper = builtins.replaceStrings
    (stringToCharacters "abcdefghijklmnopqrstuvwxyz")
    (stringToCharacters "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
  stringToCharacters = s: builtins.genList (i: builtins.substring i 1 s) (builtins.stringLength s);
  concatMapStrings = f: l: builtins.concatStringsSep "" (map f l);
  concatStringsSep = builtins.concatStringsSep;
  hasPrefix = p: s: builtins.substring 0 (builtins.stringLength p) s == p;
  nameValuePair = name: value: { inherit name value; };
  mapAttrs' = f: set: builtins.listToAttrs (map (n: f n set.${n}) (builtins.attrNames set));
  filterAttrs = pred: set: builtins.listToAttrs (builtins.concatMap
    (n: if pred n set.${n} then [{ name = n; value = set.${n}; }] else [ ]) (builtins.attrNames set));
  optional = c: x: if c then [ x ] else [ ];
  optionals = c: xs: if c then xs else [ ];
  optionalAttrs = c: a: if c then a else { };
}
