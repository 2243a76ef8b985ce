# Completes each line of stdin as bash would at its end, with bash-completion loaded:
# bash complete.bash <completion script>; prints the candidates of each line, sorted, on one line.
source /usr/share/bash-completion/bash_completion
source "$1"
fn=$(complete -p microagent | sed -E 's/.* -F ([^ ]+) .*/\1/')
while IFS= read -r line; do
  COMP_LINE=$line COMP_POINT=${#line}
  read -ra COMP_WORDS <<<"$line"
  [[ $line == *" " ]] && COMP_WORDS+=("")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  "$fn" microagent "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
  printf '%s\n' "${COMPREPLY[@]}" | sort -u | paste -sd' '
done
