# Completes each line of stdin as fish would at its end: fish complete.fish <completion script>;
# prints the candidates of each line, sorted, on one line.
source $argv[1]
while read -l line
    echo (string join ' ' -- (complete -C"$line" | string replace -r '\t.*' '' | sort -u))
end
