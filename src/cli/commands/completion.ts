// `keel completion bash|zsh`: completion scripts generated from the command tree itself, so every
// command and option is in them the moment it exists. They complete command words and options;
// node and object names are not completed (that would need a call to the head per key press).
import { Argument, type Command } from 'commander';

/** Every command path ("keel", "keel node", …) with its subcommand names and its options. */
function walk(command: Command, path: string, out: Map<string, { subcommands: string[]; options: string[] }>): void {
  const subcommands = command.commands.map((c) => c.name());
  const options = [...command.options.map((o) => o.long).filter((o): o is string => o !== undefined), '--help'];
  out.set(path, { subcommands, options });
  for (const sub of command.commands) walk(sub, `${path} ${sub.name()}`, out);
}

/**
 * `_keel_subcommands PATH` and `_keel_options PATH`: shell functions (bash and zsh read them alike)
 * that echo the subcommands and the options of a command path ("keel power").
 */
function lookups(program: Command): string {
  const tree = new Map<string, { subcommands: string[]; options: string[] }>();
  walk(program, program.name(), tree);
  const lookup = (name: string, pick: 'subcommands' | 'options') => [
    `${name}() {`,
    '  case "$1" in',
    ...[...tree].map(([path, entry]) => `    '${path}') echo '${entry[pick].join(' ')}' ;;`),
    '  esac',
    '}',
  ].join('\n');
  return `${lookup('_keel_subcommands', 'subcommands')}\n${lookup('_keel_options', 'options')}`;
}

export function bashCompletion(program: Command): string {
  return `# bash completion for keel: source <(keel completion bash), or save as /etc/bash_completion.d/keel
${lookups(program)}
_keel() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmdpath=keel word i
  for ((i = 1; i < COMP_CWORD; i++)); do
    word="\${COMP_WORDS[i]}"
    [[ "$word" == -- ]] && return 0
    [[ " $(_keel_subcommands "$cmdpath") " == *" $word "* ]] && cmdpath="$cmdpath $word"
  done
  if [[ "$cur" == -* ]]; then
    COMPREPLY=($(compgen -W "$(_keel_options "$cmdpath")" -- "$cur"))
  else
    COMPREPLY=($(compgen -W "$(_keel_subcommands "$cmdpath")" -- "$cur"))
  fi
}
complete -o default -F _keel keel
`;
}

export function zshCompletion(program: Command): string {
  return `#compdef keel
# zsh completion for keel: keel completion zsh > "\${fpath[1]}/_keel", or source <(keel completion zsh)
${lookups(program)}
_keel() {
  local cmdpath=keel word i
  for ((i = 2; i < CURRENT; i++)); do
    word=\${words[i]}
    [[ "$word" == -- ]] && return 0
    (( \${\${=$(_keel_subcommands "$cmdpath")}[(Ie)$word]} )) && cmdpath="$cmdpath $word"
  done
  if [[ "$PREFIX" == -* ]]; then
    compadd -- \${=$(_keel_options "$cmdpath")}
  else
    compadd -- \${=$(_keel_subcommands "$cmdpath")}
  fi
}
if [[ "$funcstack[1]" == _keel ]]; then _keel "$@"; else compdef _keel keel; fi
`;
}

export function registerCompletionCommand(program: Command): void {
  program.command('completion').description('print a shell completion script: source <(keel completion bash) (or zsh)')
    .addArgument(new Argument('<shell>', 'the shell').choices(['bash', 'zsh']))
    .action((shell: 'bash' | 'zsh') => {
      process.stdout.write(shell === 'bash' ? bashCompletion(program) : zshCompletion(program));
    });
}
