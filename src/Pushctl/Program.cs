using PushService.Pushctl;

return await Cli.RunAsync(args);
