# zsh -f complete.zsh DIR LINE: prints, one a line, what zsh's completion system offers for the
# command line LINE (the cursor at its end) with the completion functions in DIR, by typing it
# into an interactive zsh on a pseudo-terminal. Used by tests/suite/completion.rs.
zmodload zsh/zpty || exit 3
zpty z zsh -f -i
zpty -w z "PROMPT=''; fpath=($1 \$fpath); autoload -U compinit; compinit -u -D"
zpty -w z 'finish () { builtin print -r -- "CAPTURE-END" }'
zpty -w z 'comppostfuncs=(finish)'
zpty -w z 'compadd () {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  typeset -a __hits; builtin compadd -A __hits "$@"
  local h; for h in $__hits; do builtin print -r -- "CAPTURE:$h"; done
}'
zpty -w z "bindkey '^I' complete-word"
zpty -w z "print CAPTURE-READY"
# Skip what the shell echoes until it is ready.
while zpty -r z got; do [[ $got == CAPTURE-READY* ]] && break; done
zpty -w -n z "$2"$'\t'
integer n=0
while zpty -r -t z got || { sleep 0.05; (( ++n < 200 )) }; do
  [[ -z $got ]] && continue
  got=${${got//$'\r'/}%$'\n'}
  [[ $got == *CAPTURE-END* ]] && break
  [[ $got == *CAPTURE:* ]] && print -r -- ${got##*CAPTURE:}
  got=
done
zpty -d z
