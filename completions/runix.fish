# fish completion for runix: commands, options, store paths and a
# distributable's apps, from runix's own --help.

function __runix_help_commands
    sed -n '/^Commands:$/,/^$/s/^  \([^ ][^ ]*\) *\(.*\)/\1\t\2/p' | string match -v -r '^help\t'
end

function __runix_complete
    set -l tokens (commandline -opc)
    set -l cur (commandline -ct)
    set -l prog $tokens[1]
    set -l cmd
    set -l sub
    set -l store
    set -l help
    set -l skip 0
    for w in $tokens[2..-1]
        if test $skip = 1
            set skip 0
            continue
        end
        switch $w
            case --store
                set skip 2
                continue
            case --cache --extra-cache --trusted-key --engine --url --with -o --output --rootfs --oci --entry --layers --init --hostname --map --network --stop-timeout
                set skip 1
                continue
            case '-*'
                continue
        end
        if test "$skip" = 2
            set store $w
            set skip 0
            continue
        end
        if test -z "$cmd"
            set cmd $w
            set help (command $prog $cmd --help 2>/dev/null)
            if contains -- Commands: $help
                set sub ''
            else
                set sub -
            end
        else if test -z "$sub"
            set sub $w
        end
    end
    switch "$tokens[-1]"
        case --store
            __fish_complete_directories $cur
            return
        case --cache --extra-cache --trusted-key --url --hostname --stop-timeout --init --network --entry
            return
        case --map
            printf '%s\n' auto single subid
            return
        case --layers
            printf '%s\n' per-path one
            return
        case --rootfs
            __fish_complete_directories $cur
            return
    end
    if test -z "$cmd"
        set help (command $prog --help 2>/dev/null)
    end
    if string match -q -- '-*' $cur
        if test -n "$cmd" -a -n "$sub" -a "$sub" != -
            set help (command $prog $cmd $sub --help 2>/dev/null)
        end
        printf '%s\n' $help | string match -a -r -- '--?[A-Za-z0-9][A-Za-z0-9-]*' | sort -u
        return
    end
    if test -z "$cmd" -o -z "$sub"
        printf '%s\n' $help | __runix_help_commands
        return
    end
    if string match -q -- '*#*' $cur
        set -l file (string split -m 1 '#' -- $cur)[1]
        for app in (command $prog self complete apps $file 2>/dev/null)
            echo "$file#$app"
        end
        return
    end
    if string match -q -- '/nix/store/*' $cur; or string match -q -- "$cur*" /nix/store/
        set -l paths (command $prog self complete paths (test -n "$store"; and echo --store $store) $cur 2>/dev/null)
        if test (count $paths) -gt 0
            printf '%s\n' $paths
            return
        end
    end
    __fish_complete_path $cur
end

complete -c runix -f -a '(__runix_complete)'
