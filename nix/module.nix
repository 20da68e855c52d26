# NixOS module: services.wgmesh — the wgmesh agent as a system service.
#
# The service runs exactly the shipped unit (packaging/systemd/wgmesh.service): its [Service]
# directives (hardening, KillMode=process, readiness by ExecStartPost, StateDirectory, ...)
# are read from that file at evaluation time, so NixOS and other distributions cannot drift
# apart. Only the paths are rewritten (the package's bin instead of /usr/local/bin) and the
# EnvironmentFile= is replaced by `settings` (→ WGMESH_* variables) and `environmentFile`.
#
#   services.wgmesh = {
#     enable = true;
#     settings = { peers = [ "203.0.113.10" ]; advertise = [ "198.51.100.7:51820" ]; };
#     meshKeyFile = "/run/secrets/wgmesh-mesh-key";   # a path string: never copied to the store
#     openFirewall = true;
#   };
{ config, lib, pkgs, ... }:

let
  cfg = config.services.wgmesh;
  inherit (lib) mkOption mkEnableOption mkIf types;

  # --- the shipped unit's [Service] section, as an attribute set -------------------------------
  unitText = builtins.readFile ../packaging/systemd/wgmesh.service;
  lines = builtins.filter builtins.isString (builtins.split "\n" unitText);
  # [ { section; key; value; } ] for every Key=Value line (comments and blanks skipped)
  entries = (builtins.foldl'
    (acc: line:
      let
        sec = builtins.match "[[]([A-Za-z]+)[]][[:space:]]*" line;
        kv = builtins.match "([A-Za-z]+)=(.*)" line;
      in
      if sec != null then acc // { section = builtins.head sec; }
      else if kv != null then acc // { out = acc.out ++ [{ section = acc.section; key = builtins.elemAt kv 0; value = builtins.elemAt kv 1; }]; }
      else acc)
    { section = ""; out = [ ]; }
    lines).out;
  shippedService = builtins.listToAttrs (map (e: { name = e.key; value = e.value; })
    (builtins.filter (e: e.section == "Service") entries));
  shippedUnit = builtins.listToAttrs (map (e: { name = e.key; value = e.value; })
    (builtins.filter (e: e.section == "Unit") entries));

  bin = "${cfg.package}/bin/wgmesh";
  rewrite = builtins.replaceStrings [ "/usr/local/bin/wgmesh" "/bin/sh " ] [ bin "${pkgs.runtimeShell} " ];

  # --- settings → WGMESH_* ----------------------------------------------------------------------
  # listenPort → WGMESH_LISTEN_PORT; lists are comma-joined (peers, tags, advertise, stunServers)
  envName = name: "WGMESH_" + lib.toUpper (lib.concatMapStrings
    (c: if builtins.match "[A-Z]" c != null then "_" + c else c)
    (lib.stringToCharacters name));
  envValue = v:
    if builtins.isList v then lib.concatStringsSep "," (map toString v)
    else if builtins.isBool v then (if v then "on" else "off")
    else toString v;
  environment = lib.mapAttrs' (n: v: lib.nameValuePair (envName n) (envValue v))
    (lib.filterAttrs (_: v: v != null && v != [ ]) cfg.settings);

  s = cfg.settings;
  lanPort = if s.lanPort != null then s.lanPort else s.gossipPort + 1;
  probePort = if s.probePort != null then s.probePort else s.gossipPort + 2;
in
{
  options.services.wgmesh = {
    enable = mkEnableOption "the wgmesh full-mesh WireGuard agent";

    package = mkOption {
      type = types.package;
      default = pkgs.wgmesh;
      defaultText = "pkgs.wgmesh (from this repository's overlay: flake.nix or default.nix)";
      description = "The wgmesh package (its bin/wgmesh is the one-file bundle, run by Node.js).";
    };

    command = mkOption {
      type = types.enum [ "up" "join" ];
      default = "up";
      description = ''
        `up` creates a mesh when there is no state and no key, and joins one when `settings.peers`
        and `meshKeyFile` are set; `join` refuses to start without saved state, peers and key.
      '';
    };

    settings = mkOption {
      default = { };
      description = ''
        WGMESH_* settings: every flag of `wgmesh up` by its camelCase name (listenPort →
        WGMESH_LISTEN_PORT; lists are comma-joined; booleans become on/off). See `man wgmesh`.
        The mesh key is never a setting: use meshKeyFile.
      '';
      type = types.submodule {
        freeformType = types.attrsOf (types.nullOr (types.oneOf [ types.str types.int types.bool (types.listOf types.str) ]));
        options = {
          interface = mkOption { type = types.str; default = "wgmesh0"; description = "WireGuard interface."; };
          listenPort = mkOption { type = types.port; default = 51820; description = "WireGuard UDP port."; };
          gossipPort = mkOption { type = types.port; default = 51821; description = "Gossip TCP port."; };
          stunPort = mkOption { type = types.port; default = 3478; description = "STUN UDP port (also port+1); 0 = none."; };
          lanPort = mkOption { type = types.nullOr types.port; default = null; description = "LAN beacon UDP port (null: gossip port + 1; 0 = off)."; };
          probePort = mkOption { type = types.nullOr types.port; default = null; description = "Failure-detector UDP port, over the mesh interface (null: gossip port + 2)."; };
          peers = mkOption { type = types.listOf types.str; default = [ ]; description = "Members to join through (host[:port]); needed only for the first start."; };
        };
      };
    };

    meshKeyFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/wgmesh-mesh-key";
      description = ''
        Absolute path (a string, so it is never copied into the world-readable Nix store) of a
        file holding the mesh key, mode 0600. Passed to the service with LoadCredential=.
        Not needed on the first host of a new mesh, nor after the first start (the state
        directory keeps the key).
      '';
    };

    environmentFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      description = "Extra EnvironmentFile= with WGMESH_* settings (read at start, not copied to the store).";
    };

    openFirewall = mkOption {
      type = types.bool;
      default = false;
      description = ''
        Open the WireGuard (UDP), gossip (TCP), STUN (UDP, 2 ports) and LAN beacon (UDP) ports,
        and the probe port (UDP) on the mesh interface only.
      '';
    };
  };

  config = mkIf cfg.enable {
    assertions = [
      {
        assertion = cfg.meshKeyFile == null || (lib.hasPrefix "/" cfg.meshKeyFile && !(lib.hasPrefix builtins.storeDir cfg.meshKeyFile));
        message = "services.wgmesh.meshKeyFile must be an absolute path outside the Nix store (the store is world-readable)";
      }
      {
        assertion = !(cfg.settings ? meshKey);
        message = "services.wgmesh.settings.meshKey would put the mesh key into the Nix store: use meshKeyFile";
      }
      {
        assertion = !cfg.openFirewall || s.gossipPort != 0;
        message = "services.wgmesh.openFirewall needs a fixed settings.gossipPort (not 0)";
      }
    ];

    environment.systemPackages = [ cfg.package ];

    networking.firewall = mkIf cfg.openFirewall {
      allowedUDPPorts = [ s.listenPort ]
        ++ lib.optionals (s.stunPort != 0) [ s.stunPort (s.stunPort + 1) ]
        ++ lib.optional (lanPort != 0) lanPort;
      allowedTCPPorts = [ s.gossipPort ];
      interfaces.${s.interface}.allowedUDPPorts = lib.optional (probePort != 0) probePort;
    };

    systemd.services.wgmesh = {
      description = shippedUnit.Description;
      documentation = [ shippedUnit.Documentation ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];
      wantedBy = [ "multi-user.target" ];
      # ip, wg and wireguard-go for the agent; grep and sleep for the readiness check
      path = [ pkgs.iproute2 pkgs.wireguard-tools pkgs.wireguard-go pkgs.gnugrep pkgs.coreutils ];
      environment = environment
        // lib.optionalAttrs (cfg.meshKeyFile != null) { WGMESH_MESH_KEY_FILE = "%d/mesh.key"; };
      serviceConfig = (builtins.removeAttrs shippedService [ "EnvironmentFile" "ExecStart" "ExecStartPost" ]) // {
        ExecStart = "${bin} ${cfg.command}";
        ExecStartPost = rewrite shippedService.ExecStartPost;
      }
      // lib.optionalAttrs (cfg.meshKeyFile != null) { LoadCredential = "mesh.key:${cfg.meshKeyFile}"; }
      // lib.optionalAttrs (cfg.environmentFile != null) { EnvironmentFile = cfg.environmentFile; };
    };
  };
}
